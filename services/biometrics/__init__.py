"""The tenprint biometrics shared by the SIB's state file, IAFIS and IDENT.

A tenprint is ten finger slots (FGP 1..10); each present finger carries a float32 feature
template of `TEMPLATE_DIM` values, and an absent finger (amputated, unprintable) is an empty
slot: a presence mask says so, and it takes no part in any score. Identification is 1:N: an HNSW
index (hnswlib, inner product) over a coarse vector (the first 8 values of each finger)
proposes `rescore` candidates, and each is rescored exactly with the full templates as
Σ cos over the fingers present in both / sqrt(n_common · 10). Decisions compare that score
with a threshold calibrated to a target false-positive identification rate (FPIR).

One module per job: `params` (the numbers and index parameters, without numpy), `template`
(the template and its wire and storage forms), `scoring` (coarse vectors and fused scores),
`calibration` (FPIR and thresholds), `engine` (the HNSW index, saved and loaded), `enrollment`
(index updates staged until a transaction commits), `changes` (the change log's table), `store`
(the saved index kept consistent with the database) and `config` (the settings of a service
that searches prints). Nothing is imported here, so a module that needs only the parameters,
the settings or the change log's table does not load numpy or hnswlib.
"""
