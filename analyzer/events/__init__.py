"""The vocabulary shared by every layer: small immutable records, no logic, stdlib only."""
