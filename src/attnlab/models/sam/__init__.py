"""Segment Anything (Kirillov et al. 2023, arXiv:2304.02643) in the official state-dict layout, the
prompt-tuning token of seed 004 and iterative box refinement; see docs/segment.md."""
