"""Shoe search by text (Vietnamese and English) and by photo on a CLIP model fine-tuned for shoes

Modules:

- `clip_shoe.milvus`: The same search over a Milvus collection, for catalogs that outgrow one machine's memory or need several servers sharing one live index.
- `clip_shoe.pairs`: Turn scraped products, or any catalog CSV/JSONL with photos and text, into clean, deduplicated image–text pairs with a grouped 90/10 split, written as WebDataset shards and a Parquet manifest.
- `clip_shoe.search`: Index a catalog's photos with FAISS and return the top-k products for text, photo, text + photo and "more like this" queries, with metadata filters and a keyword side that ignores Vietnamese diacritics."""

__version__ = "0.1.0"
