"""The connection pool every query and checkpoint of a replica goes through (storage/database.py)."""

from graphrun_server.storage.database import make_pool


async def test_a_call_gets_the_connection_returned_last(database_url):
    """Most recently used first: a run's next round trip goes to the PostgreSQL backend that just
    served it (warm), and the connections idle longest stay idle, where the pool can close them."""
    pool = make_pool(database_url, max_size=4)
    await pool.open(wait=True)
    try:
        taken = [await pool.getconn() for _ in range(3)]
        backends = [conn.info.backend_pid for conn in taken]
        for conn in taken:  # returned first to last
            await pool.putconn(conn)
        again = [await pool.getconn() for _ in range(3)]
        assert [conn.info.backend_pid for conn in again] == backends[::-1]
        for conn in again:
            await pool.putconn(conn)
    finally:
        await pool.close()
