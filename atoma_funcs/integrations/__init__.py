"""Framework adapters over the SDK's functions: `atoma_funcs.integrations.langchain` (ChatAtoma,
AtomaEmbeddings; extra `langchain`) and `atoma_funcs.integrations.pydantic_ai` (AtomaModel; extra
`pydantic-ai`). Nothing is imported here: each adapter loads its framework when it is imported."""
