// pgjdbc through switchyard: server-side prepared statements after five executions
// (prepareThreshold), batches, transactions and metadata.
// Usage: java -cp postgresql.jar:. Jdbc jdbc:postgresql://127.0.0.1:PORT/app app secret
import java.sql.*;

public class Jdbc {
    static int checks = 0;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
        checks++;
    }

    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS jdbc_items");
                s.execute("CREATE TABLE jdbc_items (id int PRIMARY KEY, name text, price numeric(8,2))");
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT ?::int + 1")) {
                for (int i = 0; i < 20; i++) {
                    ps.setInt(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next() && rs.getInt(1) == i + 1, "select " + i);
                    }
                }
            }
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_items (id, name, price) VALUES (?, ?, ?)")) {
                for (int i = 0; i < 100; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "item" + i);
                    ps.setBigDecimal(3, new java.math.BigDecimal(i + ".50"));
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            c.commit();
            try (PreparedStatement ps = c.prepareStatement("SELECT name, price FROM jdbc_items WHERE id = ?")) {
                for (int i = 0; i < 20; i++) {
                    ps.setInt(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next() && rs.getString(1).equals("item" + i), "row " + i);
                    }
                }
            }
            c.rollback();
            c.setAutoCommit(true);
            DatabaseMetaData md = c.getMetaData();
            check(md.getDatabaseProductName().equals("PostgreSQL"), "product name");
        }
        System.out.println("OK " + checks);
    }
}
