"""Speech menus: callers' audio over RTP, Vosk recognition, end-of-speech detection, models."""
