"""The demos of the classic uses (issue 13): their namespaces, simulated feeds and endpoints.

On with ``livehub serve`` (``demos``) unless ``--production`` or the file configures its own
namespaces; every namespace here is open to anonymous clients, which is why they exist only in
demo mode (``livehub.config``).  The pages themselves are static files (``livehub/static``).
"""
