"""Reading captures: containers (pcap, pcapng, compressed), link layers and IP.

The only package that touches files. Everything above it sees frame numbers, integer-ns timestamps and bytes.
"""
