using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Model;

public sealed class CatalogDbContext(DbContextOptions<CatalogDbContext> options) : DbContext(options)
{
    public DbSet<Listing> Listings => Set<Listing>();

    public DbSet<TestTask> TestTasks => Set<TestTask>();

    public DbSet<ValuationRun> Valuations => Set<ValuationRun>();

    public DbSet<OutboxMessage> Outbox => Set<OutboxMessage>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Listing>(listing =>
        {
            listing.ToTable("listings");
            listing.HasKey(l => l.Id);
            listing.Property(l => l.SellerId).HasMaxLength(200);
            listing.Property(l => l.Name).HasMaxLength(200);
            listing.Property(l => l.Description).HasMaxLength(2000);
            listing.Property(l => l.Status).HasConversion<string>().HasMaxLength(20);
            listing.HasIndex(l => l.SellerId);
        });
        modelBuilder.Entity<TestTask>(task =>
        {
            task.ToTable("test_tasks");
            task.HasKey(t => t.Id);
            task.HasIndex(t => t.BuyerId);
        });
        modelBuilder.Entity<ValuationRun>(valuation =>
        {
            valuation.ToTable("valuations");
            valuation.HasKey(v => v.Id);
            valuation.Property(v => v.Status).HasConversion<string>().HasMaxLength(20);
            valuation.HasIndex(v => v.BuyerId);
            valuation.HasMany(v => v.Sellers).WithOne().HasForeignKey(s => s.ValuationId);
        });
        modelBuilder.Entity<ValuationSellerValue>(seller =>
        {
            seller.ToTable("valuation_sellers");
            seller.HasKey(s => new { s.ValuationId, s.SellerId });
        });
        modelBuilder.Entity<OutboxMessage>(message =>
        {
            message.ToTable("outbox");
            message.HasKey(m => m.Id);
            message.HasIndex(m => m.MessageId).IsUnique();
            message.HasIndex(m => m.DispatchedAt);
        });
    }
}
