"""Benchmarks that start their own throwaway processes on 127.0.0.1 and stop by themselves."""
