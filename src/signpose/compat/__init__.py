"""Every use of a dependency's private internals, one module per dependency, each pinned by a test.

An upgrade of a pin that changes what a module here relies on fails in its own test
(tests/test_compat_<dependency>.py) with a message naming the pin, not at run time elsewhere.
"""
