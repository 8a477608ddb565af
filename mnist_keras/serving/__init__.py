"""Serving: TF Serving's REST and gRPC APIs, versions, batching, Prometheus metrics and the drawing page.

May import data, inference and exporting (TF Serving's files); the last stage, imported by no
package.
"""
