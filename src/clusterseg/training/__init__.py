"""clusterseg.training"""
