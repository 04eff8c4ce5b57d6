"""Benchmarks run by ``make bench``: every module in this package registers its own with
``@benchmark("name")`` (see ``registry``); ``python -m bench [name ...]`` runs them."""
