"""STUB: tf.compat.v1 signatures. To be implemented."""
