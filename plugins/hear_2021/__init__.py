"""The HEAR 2021 suite: the 19 released task folders, downloaded rather than generated.

The catalogue (``hear_2021.catalogue``) records each task as the organisers published it,
with the source of every fact, so a run can be traced back to the released data.
"""
