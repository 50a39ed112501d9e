"""The fake SMSC's logins and their passwords, by number: what the benchmark seeds and what the
floor's own process (bench.floor_io, which imports none of the bot) sends."""


def login_name(login: int) -> str:
    return f"user{login:05d}"


def password(login: int) -> str:
    return f"pw-{login:05d}"
