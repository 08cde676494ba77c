"""The admin sign-in lockout (django-axes) as an authentication backend."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every sign-in that comes with a request (the admin's
    login form: the attack surface); a call without one (a management command, a test's
    `client.login`, `authenticate()` in code) has no address to count and goes on to the next
    backend, where axes itself would refuse it with AxesBackendRequestParameterRequired."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
