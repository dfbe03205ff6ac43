"""clusterseg.nn"""
