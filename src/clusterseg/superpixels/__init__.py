"""clusterseg.superpixels"""
