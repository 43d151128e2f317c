"""FBI CJIS Division / IAFIS: criminal master file, SRE, interoperability search, IAQ routing."""
