"""The orchestrator's domain: the records of tasks, sessions, accounts, approvals and schedules, and the
pure rules of how a task changes state. The store, the engine and the services all import it; it imports
none of them.
"""
