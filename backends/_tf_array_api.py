"""The Array API namespace of the TensorFlow backend: a thin adapter over ``tf``.

array-api-compat has no TensorFlow namespace, so this module is one: the functions, dtypes and
``__array_namespace_info__`` the core uses, each with the signature and the semantics of the
Array API standard (2023.12) for the arguments the core passes, computed with TensorFlow ops on
``tf.Tensor`` / ``tf.Variable`` arrays (results are ``tf.Tensor``s). Where TensorFlow's own op
differs from the standard the function says so and does what the standard says:

- ``argsort``/``sort`` are stable (``tf.math.top_k``, which keeps the lower index first on ties,
  on an order-reversing key for ascending order: ``~x`` for integers, never overflowing);
- ``argmax`` returns the FIRST maximal index (TF leaves ties unspecified);
- ``sum``/``cumulative_sum`` of narrow integers and bools return int64, the default integer;
- ``maximum``/``minimum`` split the gradient evenly between equal arguments, as PyTorch and JAX
  do (TF gives it all to the first argument);
- ``logaddexp`` (TF has none) is NumPy's formula with the exact gradient ``exp(x_i - out)``;
- ``searchsorted`` returns int64 and accepts values of any shape.

Importing this module imports TensorFlow. TensorFlow's own classes are left as they are: the
core calls the standard's functions where ``tf.Tensor`` lacks the operator (bit shifts) and
reads ``len(x.shape)`` rather than ``x.ndim`` (which ``tf.Variable`` lacks).

The functions live in four modules by job: :mod:`._tf_array_api_base` (dtypes, devices,
``asarray``, promotion), :mod:`._tf_array_api_creation` (creation, dtype and shape),
:mod:`._tf_array_api_search` (indexing, sorting, reductions) and
:mod:`._tf_array_api_elementwise`; this module is the namespace that gathers them.
"""

from ._tf_array_api_base import *  # noqa: F401,F403
from ._tf_array_api_base import __all__ as _base_names
from ._tf_array_api_base import __array_namespace_info__, _default_device, _on  # noqa: F401
from ._tf_array_api_creation import *  # noqa: F401,F403
from ._tf_array_api_creation import __all__ as _creation_names
from ._tf_array_api_elementwise import *  # noqa: F401,F403
from ._tf_array_api_elementwise import __all__ as _elementwise_names
from ._tf_array_api_search import *  # noqa: F401,F403
from ._tf_array_api_search import __all__ as _search_names

__array_api_version__ = "2023.12"

__all__ = [*_base_names, *_creation_names, *_search_names, *_elementwise_names]
