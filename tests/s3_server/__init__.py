"""Real S3 servers for tests: SeaweedFS (`weed mini`) for data paths, moto for Glacier rules.

Use `from tests.s3_server.fixtures import seaweed, moto_s3` in a test module.
"""
