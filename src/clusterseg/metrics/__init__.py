"""clusterseg.metrics"""
