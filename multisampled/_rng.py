"""STUB: counter-based generator (Threefry-2x32) on Array API integer ops. To be implemented."""
class Generator:
    def __init__(self, seed=None):
        raise NotImplementedError
