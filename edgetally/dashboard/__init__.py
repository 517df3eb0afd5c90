"""`edge dashboard`: a self-contained local web page fed from MQTT through a small bridge."""
