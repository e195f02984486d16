"""Intelligent IVR: declarative flows, a pure flow engine and a Twilio Voice web layer."""

__version__ = "0.1.0"
