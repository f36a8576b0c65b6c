"""The taskgate gateway: a Falcon WSGI app in front of the orchestrator.

``gateway.app.create_app`` wires it; ``gateway.wsgi.application`` is what gunicorn serves.
"""
