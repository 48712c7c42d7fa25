"""Providers: one package per kind of infrastructure (``onprem/`` …), each with its clients, its
calls and the translation of its errors into :mod:`providers.errors`. Nothing above this package
names a daemon or a cloud."""
