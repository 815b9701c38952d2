"""What runs the metric networks' forwards besides eager PyTorch."""
