using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace DataMarket.Catalog.Model;

public sealed class CatalogDbContext(DbContextOptions<CatalogDbContext> options) : DbContext(options)
{
    public DbSet<Listing> Listings => Set<Listing>();

    public DbSet<TestTask> TestTasks => Set<TestTask>();

    public DbSet<ProxyModel> Models => Set<ProxyModel>();

    public DbSet<ValuationRun> Valuations => Set<ValuationRun>();

    public DbSet<OutboxMessage> Outbox => Set<OutboxMessage>();

    public DbSet<CallbackNotice> CallbackNotices => Set<CallbackNotice>();

    public DbSet<IdempotencyRecord> IdempotencyKeys => Set<IdempotencyRecord>();

    /// <summary>
    /// Every timestamp is UTC. SQLite stores DateTime as text without a zone and EF reads it back as Unspecified,
    /// which JSON then writes without 'Z'; marking it UTC on the way out keeps the zone on every read.
    /// </summary>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcDateTimeConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcDateTimeConverter>();
    }

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
        modelBuilder.Entity<ProxyModel>(model =>
        {
            model.ToTable("proxy_models");
            model.HasKey(m => m.Id);
            model.Property(m => m.BuyerId).HasMaxLength(200);
            model.Property(m => m.Name).HasMaxLength(200);
            model.Property(m => m.BlobId).HasMaxLength(64);
            model.Property(m => m.HiddenWidths).HasMaxLength(200);
            model.HasIndex(m => m.BuyerId);
        });
        modelBuilder.Entity<ValuationRun>(valuation =>
        {
            valuation.ToTable("valuations");
            valuation.HasKey(v => v.Id);
            valuation.Property(v => v.Status).HasConversion<string>().HasMaxLength(20);
            valuation.HasIndex(v => v.BuyerId);
            valuation.HasMany(v => v.Sellers).WithOne().HasForeignKey(s => s.ValuationId);
            valuation.Property(v => v.CallbackUrl).HasMaxLength(DataMarket.Catalog.Application.RequestValuationRequestValidator.MaxCallbackUrlLength);
            valuation.Property(v => v.CallbackSecret).HasMaxLength(100);
        });
        modelBuilder.Entity<ValuationSellerValue>(seller =>
        {
            seller.ToTable("valuation_sellers");
            seller.HasKey(s => new { s.ValuationId, s.SellerId });
        });
        modelBuilder.Entity<IdempotencyRecord>(record =>
        {
            record.ToTable("idempotency_keys");
            record.HasKey(r => new { r.ActorId, r.Key });
            record.Property(r => r.ActorId).HasMaxLength(200);
            record.Property(r => r.Key).HasMaxLength(200);
            record.Property(r => r.Operation).HasMaxLength(40);
        });
        modelBuilder.Entity<CallbackNotice>(notice =>
        {
            notice.ToTable("callback_notices");
            notice.HasKey(n => n.ValuationId);
            notice.Property(n => n.LastError).HasMaxLength(500);
            notice.HasIndex(n => n.DueAt);
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

/// <summary>Stores DateTime as given (callers write UTC) and reads it back marked as UTC.</summary>
public sealed class UtcDateTimeConverter() : ValueConverter<DateTime, DateTime>(
    value => value.Kind == DateTimeKind.Local ? value.ToUniversalTime() : value,
    value => DateTime.SpecifyKind(value, DateTimeKind.Utc));
