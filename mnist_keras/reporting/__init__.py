"""The report: an offline HTML page of what the network learned, and its figures.

May import data, training and inference; imported by no package.
"""
