"""Applications: what ties a model to its data, evaluation and pictures. The registry
(`genlab.tasks.registry`) is the only place that knows every model."""
