"""The instructions the app gives the model, one module per feature, kept out of the code paths."""
