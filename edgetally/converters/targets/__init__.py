"""One module per conversion target: how a runtime's reduced-precision model is built."""
