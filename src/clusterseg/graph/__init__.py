"""clusterseg.graph"""
