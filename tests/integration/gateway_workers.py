"""Which gunicorn worker served a connection, read from /proc (Linux), to test every worker."""

import http.client
import os
import pathlib
import socket


def worker_pids(master_pid: int) -> set[int]:
    """Return the pids of the gunicorn master's worker processes."""
    children = set()
    for task in pathlib.Path(f"/proc/{master_pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.update(int(pid) for pid in text)
    return children


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """Return the inode of the server-side TCP socket of a loopback connection (IPv4)."""
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port:
            return inode
    return None


def serving_worker(connection: http.client.HTTPConnection, master_pid: int) -> int | None:
    """Return the pid of the worker holding the server side of an open connection."""
    sock: socket.socket = connection.sock
    client_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    inode = _socket_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in worker_pids(master_pid):
        fd_directory = f"/proc/{pid}/fd"
        for fd in os.listdir(fd_directory):
            try:
                if os.readlink(f"{fd_directory}/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


def get_on_new_connection(base_url: str, path: str, headers: dict, master_pid: int) -> tuple[int, int | None]:
    """GET a path on a new connection; return the status and the pid of the worker that answered."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        # The connection is still open (keep-alive), so its server side is still in the worker.
        return response.status, serving_worker(connection, master_pid)
    finally:
        connection.close()
