"""The web inbox a participant's officers read: server-rendered pages (GOV.UK Frontend) over the node's inbox.

    facts.py   what a message says, as a person reads it (who, which child, which setting, what, when)
    store.py   the inbox's own database: an index of the node's messages, people, read states, access log
    users.py   accounts, roles, passwords (Argon2id) and sign-in throttling
    app.py     the Flask application: pages, sign-in, CSRF, security headers
    cli.py     `sgx inbox serve|add-user`
"""
