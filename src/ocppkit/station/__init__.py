"""The station emulator: an emulated charging station's model, behaviour and runtime.

Modules here are pure where they can be (configuration, device model, local
authorization: the current time is passed in); the runtime drives them over a
:mod:`ocppkit.transport` client.
"""
