"""A tiny application for the emulator's tests: handlers that record what they saw in
RECORD_DIR and answer through the Management API, so tests observe them from outside."""
