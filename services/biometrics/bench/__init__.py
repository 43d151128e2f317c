"""`scfed bench`: accuracy, speed and size of the tenprint engine beside its peers.

Enrols N synthetic identities, runs P mated searches (fresh captures of enrolled people) and P
non-mated searches (strangers), and reports for our engine (hnswlib HNSW over the coarse vector,
exact rescoring), for exact numpy brute force, and for faiss-cpu's HNSW with the same coarse
vector and rescoring (when faiss is installed: the optional `bench` extra). A sweep measures
the engine's recall and search time over HNSW parameters.

One module per job: `workload` (the synthetic gallery and probes), `exact` (brute-force ground
truth), `searchers` (our engine and its peers, timed), `report` (`scfed bench biometrics`: the
figures and their human form), `sweep` (`scfed bench sweep`) and `progress` (bars on stderr).
"""
