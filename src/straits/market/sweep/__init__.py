"""Sweeps of the market over its uncertain parameters: designs, backends (Ray, processes),
Parquet streaming with resume, and which parameters drive the outcome (rank correlation, PRIM).
"""
