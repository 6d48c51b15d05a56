"""The request pipeline: one chain that every model endpoint runs through.

``chain`` composes the stages, one module each, in the order a request meets them:
``admit`` → ``plan`` → ``attempt`` → ``respond`` → ``settle``; ``context`` holds what a request
gathers on the way, ``streaming`` the client side of the wire (cancellation, event streams).
See docs/architecture.md for the picture.
"""
