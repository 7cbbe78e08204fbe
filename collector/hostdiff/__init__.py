"""The parts of `akdiag diff` for two bundles of one host (collector/diff.py puts them
together): the result's model, pseudonym-aware pairing, what a bundle lacks, and one
module per compared section."""
