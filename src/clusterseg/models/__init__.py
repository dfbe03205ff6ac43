"""clusterseg.models: loading, saving and adapting the learned models (sits above ``nn/``, below the public functions and ``training/``)."""
