export default function DashboardPage() {
  return (
    <section>
      <h1>Dashboard</h1>
      <p>The dot in the header and the badge in the sidebar show the WhatsApp session wagate keeps connected.</p>
    </section>
  );
}
