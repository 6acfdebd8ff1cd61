"""The printable safety register (CCH R*143-44) and the commission pack, as PDF/A-2b and HTML."""
