"""TLS decryption from session keys: the NSS key log (``keylog``), cipher-suite parameters (``suites``), key
derivation (``keyschedule``), record protection (``record``) and one connection's key state (``session``).

Sans-IO: nothing here reads files except ``KeyLog.from_files``; the TLS decoder drives ``SessionKeys``.
"""
