"""The operators' web dashboard: server-rendered pages under ``/dashboard``.

``web`` holds the routes (sign-in, guards, pages, downloads), ``pages`` gathers what
each page shows, ``words`` its words; ``templates/`` and ``static/`` ship in the package.
"""
