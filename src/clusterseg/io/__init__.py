"""clusterseg.io"""
