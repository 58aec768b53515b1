import rustorch_device  # noqa: F401


def test_import():
    import rustorch_device._C  # noqa: F401
