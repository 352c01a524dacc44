"""Back up a whole folder tree exactly as it is, to any target, and bring it back.

A snapshot is a manifest (every path, its mode, mtime and SHA-256, and where
its bytes sit) plus packs: zstd frames of the files' contents in an order that
puts similar files side by side. Incremental snapshots reuse what did not
change and store only the tails of files that grew.
"""
