"""clusterseg.unsupervised"""
